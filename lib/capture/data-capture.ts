import { Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as glue from 'aws-cdk-lib/aws-glue';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CAPTURE_HOUR_FORMAT, CAPTURE_MODE } from '../../contract/capture';
import { ENV } from '../../contract/environment';
import { createAccessLogsBucket } from '../private/access-logs-bucket';
import { acknowledge, wildcardResourceFinding } from '../private/acknowledge';
import { validationError } from '../private/errors';

/** What is captured of each sampled request. */
export enum CaptureMode {
  /** The request only. */
  INPUT = 'Input',
  /** The answer only. */
  OUTPUT = 'Output',
  /** The request and the answer. */
  INPUT_AND_OUTPUT = 'InputAndOutput',
}

/** Data capture of an endpoint: what is captured, where it goes, how long it stays. */
export interface DataCaptureOptions {
  /**
   * The share of infer requests captured, in percent (0 to 100, fractions allowed). Requests a
   * shadow runs on are captured whatever it says.
   * @default 100
   */
  readonly samplingPercentage?: number;

  /**
   * What is captured of each sampled request.
   * @default CaptureMode.INPUT_AND_OUTPUT
   */
  readonly captureMode?: CaptureMode;

  /**
   * The bucket the records land in. A bucket of yours keeps its own lifecycle and encryption:
   * `retention` applies to the bucket the endpoint creates only.
   * @default - a new bucket, encrypted with `encryptionKey`, TLS only, with server access logs,
   * kept when the stack is deleted
   */
  readonly bucket?: s3.IBucket;

  /**
   * The key prefix of the records, under which Firehose writes `yyyy/MM/dd/HH/` folders (UTC).
   * @default 'data-capture/'
   */
  readonly prefix?: string;

  /**
   * The key that encrypts the records, in the Firehose stream and in the bucket it creates.
   * @default - a new key, rotated every year, kept when the stack is deleted
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * How long captured records stay in the bucket the endpoint creates (its lifecycle rule).
   * @default Duration.days(90)
   */
  readonly retention?: Duration;

  /**
   * How long Firehose gathers records before it writes an S3 object (60 to 900 seconds); it
   * writes sooner once it holds 5 MiB. Longer intervals make fewer, larger objects.
   * @default Duration.minutes(5)
   */
  readonly bufferingInterval?: Duration;
}

/** Props of `DataCapture`: its options, and the endpoint it captures. */
export interface DataCaptureProps extends DataCaptureOptions {
  /** The model's name, in the Glue table's description. */
  readonly modelName: string;
  /** The handler's `CaptureFailed` metric, which the failure alarm watches. */
  readonly failureMetric: cloudwatch.IMetric;
}

/** The table's columns: SageMaker Data Capture's record and this library's metadata, as the JSON SerDe reads them. */
const GLUE_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  [
    'capturedata',
    'struct<endpointinput:struct<observedcontenttype:string,mode:string,data:string,encoding:string>,' +
      'endpointoutput:struct<observedcontenttype:string,mode:string,data:string,encoding:string>,' +
      'shadowoutput:struct<observedcontenttype:string,mode:string,data:string,encoding:string>>',
  ],
  [
    'eventmetadata',
    'struct<eventid:string,inferenceid:string,inferencetime:string,requestid:string,modelname:string,modelversion:string,variant:string,' +
      'latencyms:double,inferencems:double,' +
      'shadow:struct<modelversion:string,inferencems:double,latencyratio:double,agreed:boolean,detail:string,failed:boolean>>',
  ],
  ['eventversion', 'string'],
];

/** Where Firehose writes what it could not deliver. */
const ERROR_PREFIX = 'data-capture-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/';

/** The first hour the Glue table's partition projection lists. */
const PROJECTION_START = '2026/01/01/00';

/**
 * Data capture's resources: an Amazon Data Firehose stream (direct PUT, encrypted with a KMS key)
 * that batches the handler's capture records into GZIP JSON Lines objects in S3 under hourly
 * `yyyy/MM/dd/HH/` prefixes; the bucket, with a lifecycle rule; a Glue table over them with
 * partition projection, for Athena; and an alarm on capture failures.
 */
export class DataCapture extends Construct {
  /** The bucket the records land in. */
  public readonly bucket: s3.IBucket;
  /** The key that encrypts the records. */
  public readonly encryptionKey: kms.IKey;
  /** The Firehose stream the handler puts the records to. */
  public readonly deliveryStream: firehose.DeliveryStream;
  /** The records' key prefix in `bucket`. */
  public readonly prefix: string;
  /** The Glue database of the table. */
  public readonly glueDatabaseName: string;
  /** The Glue table over the records, for Athena: `SELECT * FROM "<database>"."<table>" WHERE hour >= '2026/12/08/00'`. */
  public readonly glueTableName: string;
  /** Capture records the handler could not write and dropped, summed over 5 minutes: 1 or more. */
  public readonly failureAlarm: cloudwatch.Alarm;
  /** The environment the handler reads. */
  public readonly environment: { [name: string]: string };

  constructor(scope: Construct, id: string, props: DataCaptureProps) {
    super(scope, id);
    const sampling = props.samplingPercentage ?? 100;
    if (!Token.isUnresolved(sampling) && !(sampling >= 0 && sampling <= 100)) {
      throw validationError(this, `dataCapture.samplingPercentage must be between 0 and 100, got: ${sampling}`);
    }
    const interval = props.bufferingInterval ?? Duration.minutes(5);
    if (!Token.isUnresolved(interval.toSeconds()) && (interval.toSeconds() < 60 || interval.toSeconds() > 900)) {
      throw validationError(this, `dataCapture.bufferingInterval must be between 60 and 900 seconds (Firehose's limits), got: ${interval.toHumanString()}`);
    }
    const prefix = props.prefix ?? 'data-capture/';
    if (!Token.isUnresolved(prefix) && (prefix.startsWith('/') || (prefix !== '' && !prefix.endsWith('/')))) {
      throw validationError(this, `dataCapture.prefix must end with '/' and not start with one (an S3 key prefix), got: '${prefix}'`);
    }
    if (props.bucket && props.retention) {
      throw validationError(this, 'dataCapture.retention is the lifecycle rule of the bucket the endpoint creates; give your own bucket its own rule instead');
    }
    this.prefix = prefix;
    this.encryptionKey =
      props.encryptionKey ??
      new kms.Key(this, 'Key', {
        description: `Data capture of model '${props.modelName}' (${this.node.path})`,
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.bucket = props.bucket ?? this.createBucket(props.retention ?? Duration.days(90));

    const destination = new firehose.S3Bucket(this.bucket, {
      dataOutputPrefix: `${prefix}!{timestamp:${CAPTURE_HOUR_FORMAT}}/`,
      errorOutputPrefix: ERROR_PREFIX,
      bufferingInterval: interval,
      compression: firehose.Compression.GZIP,
      encryptionKey: this.encryptionKey,
    });
    this.deliveryStream = new firehose.DeliveryStream(this, 'DeliveryStream', {
      destination,
      encryption: firehose.StreamEncryption.customerManagedKey(this.encryptionKey),
    });
    acknowledge(
      this.deliveryStream,
      [
        ...['kms:ReEncrypt*', 'kms:GenerateDataKey*', 's3:GetObject*', 's3:GetBucket*', 's3:List*', 's3:DeleteObject*', 's3:Abort*'].map((a) => `AwsSolutions-IAM5[Action::${a}]`),
        wildcardResourceFinding(this.bucket.arnForObjects('*'), Stack.of(this)),
      ],
      "aws-cdk-lib's Firehose roles, as its S3 destination and stream encryption write them (grantReadWrite on the capture bucket, grantEncryptDecrypt on the capture key): Firehose names the objects it writes by the hour, so it writes any key of this bucket only, and uses this key only.",
    );

    this.glueDatabaseName = Names.uniqueResourceName(this, { maxLength: 60, separator: '_' }).toLowerCase();
    this.glueTableName = 'data_capture';
    const database = new glue.CfnDatabase(this, 'GlueDatabase', {
      catalogId: Stack.of(this).account,
      databaseInput: { name: this.glueDatabaseName, description: `Data capture of model '${props.modelName}'` },
    });
    const table = new glue.CfnTable(this, 'GlueTable', {
      catalogId: Stack.of(this).account,
      databaseName: this.glueDatabaseName,
      tableInput: {
        name: this.glueTableName,
        description: `Capture records of model '${props.modelName}' (SageMaker Data Capture's JSON Lines), one partition per hour`,
        tableType: 'EXTERNAL_TABLE',
        partitionKeys: [{ name: 'hour', type: 'string' }],
        parameters: {
          classification: 'json',
          'projection.enabled': 'true',
          'projection.hour.type': 'date',
          'projection.hour.format': CAPTURE_HOUR_FORMAT,
          'projection.hour.range': `${PROJECTION_START},NOW`,
          'projection.hour.interval': '1',
          'projection.hour.interval.unit': 'HOURS',
          'storage.location.template': `s3://${this.bucket.bucketName}/${prefix}\${hour}/`,
        },
        storageDescriptor: {
          location: `s3://${this.bucket.bucketName}/${prefix}`,
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: { serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe', parameters: { 'ignore.malformed.json': 'true' } },
          columns: GLUE_COLUMNS.map(([name, type]) => ({ name, type })),
        },
      },
    });
    table.addDependency(database);

    this.failureAlarm = new cloudwatch.Alarm(this, 'FailureAlarm', {
      metric: props.failureMetric,
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `Model ${props.modelName} (${this.node.path}): capture records the handler could not write and dropped (the answers were sent); see the function's log`,
    });

    this.environment = {
      [ENV.DATA_CAPTURE_FIREHOSE_STREAM]: this.deliveryStream.deliveryStreamName,
      [ENV.DATA_CAPTURE_SAMPLING_PERCENT]: String(sampling),
      [ENV.DATA_CAPTURE_MODE]: props.captureMode ?? CAPTURE_MODE.INPUT_AND_OUTPUT,
    };
  }

  /** Lets `grantee` put records to the stream (the inference function). */
  public grantPut(grantee: iam.IGrantable): iam.Grant {
    return this.deliveryStream.grantPutRecords(grantee);
  }

  /** Lets `grantee` read the captured records (Athena users, Model Monitor jobs): the bucket and the key. */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey.grantDecrypt(grantee);
    return this.bucket.grantRead(grantee, `${this.prefix}*`);
  }

  private createBucket(retention: Duration): s3.Bucket {
    const accessLogs = createAccessLogsBucket(this, 'capture bucket');
    return new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      // One data key per bucket rather than per object: far fewer KMS requests (and their cost).
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'capture-bucket/',
      lifecycleRules: [{ expiration: retention, abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
  }
}
