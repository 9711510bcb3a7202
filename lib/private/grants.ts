import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';

/**
 * Read access to the one model object: GetObject on its key (and version). With `listBucket`,
 * also ListBucket on the bucket, so that a missing object reads as "does not exist" rather than
 * "access denied"; that lists every key, so it is for a bucket that holds only models.
 */
export function grantReadModelObject(role: iam.IRole, bucket: s3.IBucket, key: string, version: string | undefined, options: { readonly listBucket?: boolean } = {}): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: version ? ['s3:GetObject', 's3:GetObjectVersion'] : ['s3:GetObject'],
      resources: [bucket.arnForObjects(key)],
    }),
  );
  if (options.listBucket) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
  }
  bucket.encryptionKey?.grantDecrypt(role);
}
